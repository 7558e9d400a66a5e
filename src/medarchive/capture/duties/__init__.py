"""Department duties (seed §2.1, §3.1): what each department owes the archive, by when, and who is late."""
