"""The pieces of one generation job behind joker.api.generate: preparing the inputs, the
output folder, the fidelity metrics and the turntable."""
