{"algorithm":"Ed25519","keyId":"1e7b475a3d7a21b86a057e7687431a8a","signature":"oYwJhFIAY11oObGyIkM9EElkNP2kEY1jA+70EaOL+6JambM+Y4B20TZH5AuQ+aiWIHPy/4wWhrM+UVhgvUEmAA=="}
