"""The locate service: a FastAPI app over one gallery, and its offline web page.

from geobridge.serve.app import create_app
app = create_app("demo/gallery")      # uvicorn.run(app, host="127.0.0.1", port=8000)
"""
