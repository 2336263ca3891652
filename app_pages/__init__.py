"""Streamlit pages (one thin page per step); shared helpers in _state.py and _schema_editor.py."""
