"""What a service is, with no side effects: options, the spec and the Azure ML layout,
where amldebug keeps its files, entry-script checks, the signals that end a session."""
