from services.common.server import serve
from services.order.app import create_app
from services.order.settings import OrderSettings

settings = OrderSettings()
serve(settings, lambda: create_app(settings))
