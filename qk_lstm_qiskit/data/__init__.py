"""Tagged sentences, vocabularies and batches; the paper's task; CoNLL-U treebanks; prepared tasks."""
