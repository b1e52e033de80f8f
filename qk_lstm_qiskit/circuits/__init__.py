"""Parameterized Qiskit circuits: feature maps U(x) (the paper's, any circuit via ``compile``, the
named ``library`` maps with trainable layers) and the QLSTM's variational circuit."""
