"""Models named by a Hugging Face hub id, checked before a run starts.

On a machine without network, `from_pretrained("org/name")` retries the hub for ever; a run that names such a model
must be refused up front instead, naming the field: a model in the local cache loads without the network, any other
must be confirmed by the hub within HUB_TIMEOUT_S.
"""

from __future__ import annotations

HUB_TIMEOUT_S = 10.0


def check_hub_model(name: str, field: str, hint: str) -> None:
    """ValueError("<field>: ...; <hint>") unless `name` is in the Hugging Face cache or the hub confirms it in time."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return  # in the local cache: from_pretrained loads it without the network
    if constants.HF_HUB_OFFLINE:
        raise ValueError(f"{field}: {name!r} is not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE "
                         f"is set; {hint}")
    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except Exception as err:  # no network, a timeout, no such repository, no access
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise ValueError(f"{field}: {name!r} is not a local folder nor in the Hugging Face cache, and the hub did not "
                         f"confirm it within {HUB_TIMEOUT_S:g} s ({reason}); {hint}") from None
