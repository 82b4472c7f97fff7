"""Domain code more than one service needs that is neither platform nor LLM: reads of
the shared records, the evaluation queue contract, code fingerprints, guardrail
conversions."""
