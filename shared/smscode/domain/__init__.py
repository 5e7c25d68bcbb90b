"""The domain: codes, phones, messages, outcomes and errors. Pure: no I/O, no adapters."""
