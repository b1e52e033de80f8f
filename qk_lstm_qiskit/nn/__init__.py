"""torch modules: QK-LSTM cells and stacks (nn.LSTM contract), the VQC-QLSTM baseline, the tagger."""
