"""Ground-truth-referenced metrics (tempo, pitch, notes, chroma/key, emotion, FAD, sync), mir_eval style."""
