"""Where a service's inputs come from, read without side effects: environment files (requirements,
conda, Azure ML environments) and Azure ML configuration files."""
