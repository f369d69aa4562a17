from services.common.server import serve
from services.user.app import create_app
from services.user.settings import UserSettings

settings = UserSettings()
serve(settings, lambda: create_app(settings))
