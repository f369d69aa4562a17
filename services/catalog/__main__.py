from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings
from services.common.server import serve

settings = CatalogSettings()
serve(settings, lambda: create_app(settings))
