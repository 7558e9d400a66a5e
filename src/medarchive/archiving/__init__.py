"""Organisation and archiving: classification, retention, records (件), volumes (卷), 档号."""
