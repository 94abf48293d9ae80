"""analysis: transitions, finite-size scaling, power laws and figures from result tables.

Works on plain arrays and on physsgd's HDF5 files; never imports the simulator kernels."""
