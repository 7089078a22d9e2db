"""The scenarios of bench/run and what they share."""
