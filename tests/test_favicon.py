"""/favicon.ico on the demo site: a redirect to the app's icon, served as a static file."""

from tests.asgi_static import application
from tests.inprocess import request

ICON = "/static/nexus_sse/favicon.svg"


async def test_favicon_ico_redirects_to_the_apps_icon_which_is_served():
    answer = await request("GET", "/favicon.ico", app=application)
    assert answer.status == 302
    assert answer.header("Location") == ICON
    icon = await request("GET", ICON, app=application)
    assert icon.status == 200
    assert icon.header("Content-Type") == "image/svg+xml"
    assert icon.body.startswith(b"<svg ")
