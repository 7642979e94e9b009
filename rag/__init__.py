"""rag-plugin: keeps a Chroma index of your documents current and answers with cited sources."""
