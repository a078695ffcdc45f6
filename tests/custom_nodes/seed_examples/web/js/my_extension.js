// web/js/my_extension.js
app.registerExtension({
    name: "my.custom.extension",
    
    async setup() {
        // Called once when extension loads
        console.log("Extension loaded");
    },
    
    async beforeRegisterNodeDef(nodeType, nodeData, app) {
        // Modify node definition before registration
        if (nodeData.name === "MyCustomNode") {
            // Add custom behavior
        }
    },
    
    nodeCreated(node) {
        // Called when any node is created
        if (node.type === "MyCustomNode") {
            // Add custom widgets or modify node
            this.addCustomWidget(node);
        }
    },
    
    addCustomWidget(node) {
        // Add a custom widget to the node
        const widget = node.addWidget("button", "Click Me", null, () => {
            alert("Button clicked!");
        });
    }
});
