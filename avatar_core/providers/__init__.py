"""Where the avatar comes from: the contract (base.py), the registry, one folder per provider."""
