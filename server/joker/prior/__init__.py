"""2D priors behind one interface (base.Prior): the Joker diffusion prior, the weight-free
projection prior (the embedded default) and test oracles."""
