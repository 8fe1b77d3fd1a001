"""The global stage: algorithms that train the shared model the clients start from."""
