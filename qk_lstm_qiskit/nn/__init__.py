"""torch modules: QK-LSTM cells and stacks (nn.LSTM contract), the fused QK-LSTM layer, the one LSTM update
they share, the VQC-QLSTM baseline, the tagger."""
