"""Floor 1: the shared models, configuration and YAML loading that every other package builds on."""
