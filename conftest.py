"""Thin root conftest: the fixtures, options and markers live in the buckbi pytest plugin (buckbi.pytestplugin)."""
