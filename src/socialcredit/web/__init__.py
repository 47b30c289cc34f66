"""The local web dashboard (``socialcredit serve``): a FastAPI app over run directories."""
