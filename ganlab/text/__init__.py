"""Text: the birds' vocabulary and tokenizer, the course's text encoders, the DAMSM loss."""
