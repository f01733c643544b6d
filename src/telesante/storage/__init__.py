"""Blob store (filesystem by default, S3-compatible when scaled out) and the content checks of uploaded files."""
