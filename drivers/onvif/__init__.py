"""ONVIF camera driver (onvif-zeep-async)."""
