"""Mean pooling of a torch ``BertModel``'s last hidden states: the forward pass the torch
backend runs and the ONNX export records (so both backends compute the same function)."""
from __future__ import annotations


def mean_pooled(bert, input_ids, attention_mask):
    """Torch: the mean of ``bert``'s last hidden states over each row's real tokens (not yet
    normalised: a long text averages several windows first)."""
    hidden = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)
