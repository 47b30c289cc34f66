"""The day loop as a plan of named stages over blocks of citizens."""
