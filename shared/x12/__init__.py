"""X12 EDI (005010) reading and writing: tokenizer, writer, envelopes and transaction sets."""

from shared.x12.tokenizer import Delimiters, X12SyntaxError, iter_transactions, tokenize

__all__ = ["Delimiters", "X12SyntaxError", "iter_transactions", "tokenize"]
