"""YAML profiles shipped as package data: smoke, default, paper."""
