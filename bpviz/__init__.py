"""bpviz: watch back-propagation happen, one layer at a time."""
__version__ = "0.1.0"
