"""Preservation: encrypted content-addressed storage, fixity, PREMIS events, key rotation."""
