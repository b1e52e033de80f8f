"""Parameterized Qiskit circuits: the QK-LSTM feature map U(x) and the QLSTM's variational circuit."""
