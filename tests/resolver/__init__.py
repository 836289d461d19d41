"""Tests of the recursive resolver and its cache."""
