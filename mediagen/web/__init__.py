from mediagen.web.routes import mount_web

__all__ = ["mount_web"]
