"""Container and image garbage collection: pure selection policies (tested from tables) and their runners."""
