"""The oracle of option scoring: a prompt's answer options scored by a transformers model, as abmll's scorer is
meant to score them (summed log-probabilities of each option's tokens after the prompt's, softmax over options)."""
import math

import torch


def option_tokens(tok, text, option, in_context):
    """The prompt's ids (with special tokens) and the option's: " option" encoded alone, or, in_context, the tail
    of the encoding of text + " option" (which must begin with the prompt's ids)."""
    prompt = tok.encode(text).ids
    if not in_context:
        return prompt, tok.encode(" " + option, add_special_tokens=False).ids
    whole = tok.encode(text + " " + option).ids
    assert whole[:len(prompt)] == prompt
    return prompt, whole[len(prompt):]


def option_scores(model, tok, text, options, in_context=False):
    """(log-likelihood of each option, the softmax over them) under `model` (float32)."""
    logliks = []
    for option in options:
        prompt, cont = option_tokens(tok, text, option, in_context)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([prompt + cont])).logits[0].float(), -1)
        logliks.append(sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(cont)))
    z = max(logliks)
    probs = [math.exp(x - z) for x in logliks]
    return logliks, [x / sum(probs) for x in probs]
