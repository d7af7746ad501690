"""Policies and action distributions (torch)."""
