"""Long-context retrieval evaluation: needle in a haystack (Gemini 1.5 report; RULER's variants) as a Ray job."""
