"""The maths behind cnnlab's probes: each module answers one question about a trained model with numbers
(and a plot). The callbacks in `cnnlab.callbacks.probes` decide when to measure and where the numbers go
(W&B summary, loggers, JSON under the run dir)."""
