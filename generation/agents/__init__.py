"""The six agents of the MedSynth method. Each module holds its pydantic output schema,
its prompt version and a function that builds the messages; generation.services.pipeline
runs them."""
