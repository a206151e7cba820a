"""Talk: streamed LLM replies cut into sentences, and the conversation they belong to."""
