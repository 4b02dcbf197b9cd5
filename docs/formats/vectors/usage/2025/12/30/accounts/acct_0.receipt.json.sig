{"algorithm":"Ed25519","keyId":"1e7b475a3d7a21b86a057e7687431a8a","signature":"I+gIOrYEBdz/d3KdVAhZFxvSVrQNc72mXqhHEpJovtd7hRu2ZbmP0ujJx457annZMZ+toqN7IN2BxUCuAXFJDw=="}
