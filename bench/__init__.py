"""`python -m bench`: the gateway against Triton's own streaming endpoints, side by side."""
