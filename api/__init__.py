"""HTTP layer over the triage library (FastAPI). ``create_app`` builds the app."""
from api.app import create_app

__all__ = ["create_app"]
