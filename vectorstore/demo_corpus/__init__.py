"""The offline demo corpus: private, shared and public documents for alice and bob."""
